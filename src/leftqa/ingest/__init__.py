"""Reading sources: file formats into Documents, the corpus folder, sentence splitting and passages, `leftqa add`."""
