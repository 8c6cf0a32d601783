module polyglot.invalid/text-go

go 1.22

require polyglot.invalid/go v0.0.0

replace polyglot.invalid/go => ../../go
