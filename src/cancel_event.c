/* cancel_event: being written; see src/meson.build */
