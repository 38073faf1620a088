"""Call flows: per-number greeting, prompt, voice, tools and timeouts, kept in reviewed YAML files."""
