// Package archtest holds the test that keeps the import direction of
// STYLE.md guideline 2: cmd → broker, authz → keys → store; claims and web
// are leaves; authz never reaches the store or the broker.
package archtest
