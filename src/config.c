/* config: being written; see src/meson.build */
