/* retry_policy: being written; see src/meson.build */
