"""The web layer of the reference app: routes, schemas, dependencies, errors, drain."""
