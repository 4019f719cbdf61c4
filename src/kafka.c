/* kafka: being written; see src/meson.build */
