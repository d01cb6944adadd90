-- CreateEnum
CREATE TYPE "ApiKeyRole" AS ENUM ('admin', 'member', 'viewer');

-- AlterTable
ALTER TABLE "Alias" ADD COLUMN     "ownerId" TEXT;

-- AlterTable
ALTER TABLE "DatasetFile" ADD COLUMN     "ownerId" TEXT;

-- AlterTable
ALTER TABLE "Run" ADD COLUMN     "ownerId" TEXT;

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "role" "ApiKeyRole" NOT NULL,
    "secretHash" TEXT NOT NULL,
    "salt" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Alias_ownerId_name_idx" ON "Alias"("ownerId", "name");

-- CreateIndex
CREATE INDEX "DatasetFile_ownerId_createdAt_idx" ON "DatasetFile"("ownerId", "createdAt");

-- CreateIndex
CREATE INDEX "Run_ownerId_createdAt_idx" ON "Run"("ownerId", "createdAt");

-- AddForeignKey
ALTER TABLE "Run" ADD CONSTRAINT "Run_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Alias" ADD CONSTRAINT "Alias_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DatasetFile" ADD CONSTRAINT "DatasetFile_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

