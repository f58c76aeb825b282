"""Tools for developing crmstream, not installed with it: the README's screenshots."""
