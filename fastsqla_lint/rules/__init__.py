"""One module per rule. The registry imports every module here and collects the `Rule` subclasses."""
