"""Stage 1, the corpus: files, folders and tarballs read into `Article`s and their sections."""
