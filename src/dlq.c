/* dlq: being written; see src/meson.build */
