// Catch2's main for the cl-tokenctl tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
