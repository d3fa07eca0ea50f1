"""OpenTelemetry interchange: OTLP payloads and the mapping between spans and waza events."""
