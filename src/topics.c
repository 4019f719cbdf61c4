/* topics: being written; see src/meson.build */
