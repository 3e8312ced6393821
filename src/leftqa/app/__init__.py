"""What users touch: the command line and the Gradio chat UI (the only places errors become messages)."""
