"""Self-supervised representation learning: SlimCLR, the MAE base, DeepMIM and TinyMIM."""
