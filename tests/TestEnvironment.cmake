# Read by ctest before it runs any test (the top directory's
# TEST_INCLUDE_FILES): the environment every test process inherits.
# The compile cache (compiler/driver/Cache.h) is off, so the suite neither
# reads nor fills the user's ~/.cache/kiln; the cache's own tests turn it on
# with a temporary KILN_CACHE_DIR.
set(ENV{KILN_CACHE} 0)
