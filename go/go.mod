module polyglot.invalid/go

go 1.22
