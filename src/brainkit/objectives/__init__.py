"""Training objectives: contrastive (InfoNCE) now; masked reconstruction and semantic losses later."""
