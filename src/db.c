/* db: being written; see src/meson.build */
