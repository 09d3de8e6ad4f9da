/* The -h texts laid out for an 80-column terminal: the command table's texts
 * (cli/commands.c) are written as paragraphs; here they are wrapped between words, with
 * hanging indents, so no line is longer than HELP_WIDTH and none is cut inside a word.
 * The manual pages carry the full text. */
#ifndef ORCH_HELPFMT_H
#define ORCH_HELPFMT_H
#include <stddef.h>
#include <stdio.h>

#define HELP_WIDTH 80

/* "usage: orch SYNOPSIS", continued under the command's first argument. */
void helpfmt_usage(FILE *f, const char *synopsis);
/* text (newlines are spaces) from column col, wrapped lines starting at column indent;
 * ends the last line. */
void helpfmt_para(FILE *f, const char *text, size_t len, int col, int indent);
/* Option lines ("  -f, --follow   what it does", continued on lines indented deeper):
 * each option's description rewrapped under itself (at most at column 24). */
void helpfmt_options(FILE *f, const char *opts);
/* The length of text's first sentence (up to its period), or of all of it. */
size_t helpfmt_first_sentence(const char *text);

#endif
