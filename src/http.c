/* http: being written; see src/meson.build */
