"""The site pipeline: post and lab pages, the generated outputs, the engine's config,
`build` and `serve`, and the hooks and assets handed to the engine."""
