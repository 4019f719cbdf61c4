/* gateway_stripe: being written; see src/meson.build */
