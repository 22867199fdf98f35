"""Training and inference methods of the collection's papers, applicable to any model."""
