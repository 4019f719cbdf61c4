/* breaker: being written; see src/meson.build */
