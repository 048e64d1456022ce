"""Sign-language methods (the FangyunWei/SLRT family)."""
