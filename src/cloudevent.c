/* cloudevent: being written; see src/meson.build */
