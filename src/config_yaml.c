/* config_yaml: being written; see src/meson.build */
