// Keeps the test kit non-empty when common/ holds nothing else.
