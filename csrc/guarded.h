// The error convention of the C++ files that Rust calls (kernels.cpp, media.cpp): a function returns NULL on
// success or a malloc'ed copy of the exception's message, which the caller frees.
#pragma once

#include <cstdlib>
#include <cstring>
#include <exception>

namespace guarded_call {

inline char *error_text(const char *what) {
    char *copy = static_cast<char *>(std::malloc(std::strlen(what) + 1));
    if (copy != nullptr) {
        std::strcpy(copy, what);
    }
    return copy;
}

// Runs `body`; NULL, or the message of what it threw.
template <typename F>
char *guarded(F body) {
    try {
        body();
        return nullptr;
    } catch (const std::exception &e) {
        return error_text(e.what());
    } catch (...) {
        return error_text("unknown C++ exception");
    }
}

}  // namespace guarded_call
