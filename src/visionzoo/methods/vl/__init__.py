"""Vision-language methods: CLIP training, and the papers built on it (A-CLIP, CenterCLIP, LOUPE, SAN)."""
