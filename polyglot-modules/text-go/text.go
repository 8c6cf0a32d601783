package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"polyglot.invalid/go/worker"
)

// Match is one match of grep: its text and where it is in the document, in Unicode code
// points (characters) from the start, end exclusive.
type Match struct {
	Text  string `json:"text"`
	Start int    `json:"start"`
	End   int    `json:"end"`
}

// parallel runs fn(i) for i in [0, n) on at most GOMAXPROCS goroutines, each taking the
// next index when it is done with one, and stops early when ctx is cancelled. It returns
// ctx's error when it stopped early.
func parallel(ctx context.Context, n int, fn func(i int)) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// compilePattern compiles a grep pattern; a bad one is INVALID_PARAMS naming the problem.
func compilePattern(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, &worker.Error{
			Code:    worker.CodeInvalidParams,
			Message: "grep: pattern " + strconv.Quote(pattern) + " is not a valid RE2 regular expression: " + err.Error(),
			Data:    map[string]any{"pattern": pattern},
		}
	}
	return re, nil
}

// grep gives, for each document, every match of re: leftmost-first, non-overlapping, as
// Go's regexp.FindAllStringIndex finds them (RE2 syntax: linear time, no backtracking).
func grep(ctx context.Context, documents []string, re *regexp.Regexp) ([][]Match, error) {
	out := make([][]Match, len(documents))
	err := parallel(ctx, len(documents), func(i int) {
		doc := documents[i]
		matches := []Match{}
		chars, at := 0, 0 // code points before byte offset `at`
		for _, loc := range re.FindAllStringIndex(doc, -1) {
			chars += utf8.RuneCountInString(doc[at:loc[0]])
			start := chars
			chars += utf8.RuneCountInString(doc[loc[0]:loc[1]])
			at = loc[1]
			matches = append(matches, Match{Text: doc[loc[0]:loc[1]], Start: start, End: chars})
		}
		out[i] = matches
	})
	return out, err
}

// sha256Hex gives the SHA-256 digest of each item (a string's UTF-8 bytes, or binary)
// as 64 lowercase hex digits.
func sha256Hex(ctx context.Context, items [][]byte) ([]string, error) {
	out := make([]string, len(items))
	err := parallel(ctx, len(items), func(i int) {
		sum := sha256.Sum256(items[i])
		out[i] = hex.EncodeToString(sum[:])
	})
	return out, err
}

// isWordRune is the word definition: a Unicode letter (category L) or decimal digit
// (category Nd).
func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// countWords counts the maximal runs of word runes in s.
func countWords(s string) int {
	n, inWord := 0, false
	for _, r := range s {
		w := isWordRune(r)
		if w && !inWord {
			n++
		}
		inWord = w
	}
	return n
}

// wordCount gives the number of words of each document.
func wordCount(ctx context.Context, documents []string) ([]int, error) {
	out := make([]int, len(documents))
	err := parallel(ctx, len(documents), func(i int) { out[i] = countWords(documents[i]) })
	return out, err
}
