"""The report's sections, one module each: a function from the frozen load context to its result."""
