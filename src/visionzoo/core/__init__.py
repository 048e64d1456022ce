"""Core plumbing shared by every method: errors, registry, configs, seeding, checkpoint and hub IO."""
