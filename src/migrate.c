/* migrate: being written; see src/meson.build */
