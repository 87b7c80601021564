package main

import (
	"errors"
	"strconv"
	"time"
)

// errParse is the flag package's own text for a value it cannot parse.
var errParse = errors.New("parse error")

// Plain flag.Value types for flags bound to no Config field.
type (
	durationValue time.Duration
	boolValue     bool
	uintValue     uint64
	stringValue   string
)

func newStringValue(s string) *stringValue { return (*stringValue)(&s) }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errParse
	}
	*d = durationValue(v)
	return nil
}
func (d *durationValue) String() string { return time.Duration(*d).String() }

func (b *boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errParse
	}
	*b = boolValue(v)
	return nil
}
func (b *boolValue) String() string { return strconv.FormatBool(bool(*b)) }

// IsBoolFlag lets the flag stand without a value.
func (b *boolValue) IsBoolFlag() bool { return true }

func (u *uintValue) Set(s string) error {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return errParse
	}
	*u = uintValue(v)
	return nil
}
func (u *uintValue) String() string { return strconv.FormatUint(uint64(*u), 10) }

// negatedBool is a boolean flag stored negated: --skip-X over a Verify field.
type negatedBool bool

func (n *negatedBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errParse
	}
	*n = negatedBool(!v)
	return nil
}
func (n *negatedBool) String() string { return strconv.FormatBool(!bool(*n)) }

// IsBoolFlag lets the flag stand without a value.
func (n *negatedBool) IsBoolFlag() bool { return true }

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }
