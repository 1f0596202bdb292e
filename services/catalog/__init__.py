"""The catalog service: products, categories and prices."""
