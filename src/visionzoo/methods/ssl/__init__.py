"""Self-supervised representation learning: SlimCLR (MAE, DeepMIM, TinyMIM to come)."""
