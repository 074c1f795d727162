"""What every HTTP face shares: the aiohttp app and its routes, error rendering per face,
upload reading with limits, and the browser page."""
