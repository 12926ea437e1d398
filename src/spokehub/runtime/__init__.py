"""The part of spokehub that does I/O: executing runs against a store."""
