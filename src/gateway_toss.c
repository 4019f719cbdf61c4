/* gateway_toss: being written; see src/meson.build */
