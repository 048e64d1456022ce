"""Readers of real data formats, video io, transforms and keypoints."""
