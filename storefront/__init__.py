"""The storefront side: publishing events, simulating traffic, importing customers."""
