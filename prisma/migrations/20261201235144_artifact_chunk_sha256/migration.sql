-- AlterTable
ALTER TABLE "ArtifactChunk" ADD COLUMN     "chunkSha256" TEXT;

