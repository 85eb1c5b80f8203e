#!/bin/sh
# The migration task's command: wait for the database, then apply the migrations.
set -e
node ./scripts/wait-for-db.js
echo "🔄 Running database migrations..."
./node_modules/.bin/prisma migrate deploy
echo "✅ Migrations completed successfully!"
