// Package archtest holds the test that keeps the import direction: cmd →
// broker, authz → keys → store; claims and web are leaves; authz never
// reaches the store, the broker or the configuration file's package.
package archtest
