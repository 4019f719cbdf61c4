/* ratelimit: being written; see src/meson.build */
