"""The merchant console (`crmstream console`): a server-rendered web application where a
shop's operations and service staff look customers up, read every decision about them,
and run their segments, rules and imports. It signs in with a shop's API token and
shows that shop alone."""
