/* asset: files (a page, its script and style) built into a program and served as they
 * are. A page is part of the binary that serves it, so it can never be missing, or of
 * another version than the API it calls (docs/decisions.md). */
#ifndef DOZEN_ASSET_H
#define DOZEN_ASSET_H

#include <stddef.h>

#include "http.h"

/* Builds the file at path (relative to the top of the tree, where make runs) into the
 * object, as the bytes name##_start up to name##_end; at file scope, in one .c file. The
 * Makefile must list the file as a prerequisite of that object: the compiler's dependency
 * list does not see it. Uses the assembler's .incbin (GCC and Clang, ELF). */
#define ASSET_EMBED(name, path)                                                        \
    __asm__(".section .rodata\n"                                                       \
            ".global " #name "_start\n.hidden " #name "_start\n" #name "_start:\n"     \
            ".incbin \"" path "\"\n"                                                   \
            ".global " #name "_end\n.hidden " #name "_end\n" #name "_end:\n"           \
            ".byte 0\n"                                                                \
            ".previous\n");                                                            \
    extern const char name##_start[], name##_end[]

/* Answers 200 with the bytes start..end (an ASSET_EMBED pair) as content_type
 * ("text/html; charset=utf-8"). */
void asset_serve(http_response_t *res, const char *start, const char *end,
                 const char *content_type);

#endif
