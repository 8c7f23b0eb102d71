"""The embedded SYNTHETIC sample (rule generate_sample): seeded files with planted disagreements."""
