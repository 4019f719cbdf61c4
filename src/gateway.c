/* gateway: being written; see src/meson.build */
