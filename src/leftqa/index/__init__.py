"""The on-disk index: embedders, the versioned index files and their memory-mapped readers, the incremental builder."""
